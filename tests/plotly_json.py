"""Chart JSON compared as plotly.js reads it."""

import base64

import numpy as np


def decoded(spec):
    """``spec`` with Plotly's base64 typed arrays (what ``to_dict`` makes of numpy arrays) as plain lists: plotly.js
    reads either form, so a validated and an unvalidated figure compare equal."""
    if isinstance(spec, dict) and set(spec) >= {"dtype", "bdata"}:
        values = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"])
        return values.reshape(spec["shape"]).tolist() if "shape" in spec else values.tolist()
    if isinstance(spec, dict):
        return {k: decoded(v) for k, v in spec.items()}
    return [decoded(v) for v in spec] if isinstance(spec, list) else spec
