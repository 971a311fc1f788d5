"""app.py imports, before its GC freeze, everything a first click loads.

Streamlit runs a full garbage collection after every script run. Whatever is imported after the freeze is
walked by every one of those collections: torch.optim's first optimizer, for example, imports torch._dynamo
(~80k objects), and each click then paid 60-145 ms holding the GIL.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FIRST_CLICKS = r"""
import ast, gc
tree = ast.parse(open("app.py").read())
exec(compile(ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], []), "app.py", "exec"))
gc.collect()
gc.freeze()

from grpo_viz.config import TOY_WORDS, Settings
from grpo_viz.policies.loading import load_model, make_policy
from grpo_viz.policies.toy import ToyPolicy
from grpo_viz.ppo import CompareRun
from grpo_viz.stepper import StepRun
from grpo_viz.tasks import TASKS, word_reward

settings = Settings()
reward = word_reward(TOY_WORDS, settings.rewards)
StepRun(ToyPolicy()).trace(settings, reward)
CompareRun(ToyPolicy()).traces(settings, reward)
lm = StepRun(make_policy(load_model("builtin"), max_new_tokens=4))
task = next(iter(TASKS.values()))
lm.trace(settings, task.reward, task.prompts(settings.seed, 0, 0, chat=False))
gc.collect()
print(len(gc.get_objects()))
"""


def test_a_first_click_leaves_few_objects_for_the_collector():
    out = subprocess.run([sys.executable, "-c", FIRST_CLICKS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    tracked = int(out.stdout.split()[-1])
    # ~250k objects are frozen at start-up; a first click of each kind adds a few thousand of its own
    assert tracked < 30_000, f"{tracked} objects outside the frozen start-up set: a lazy import after the freeze?"
