# The image the experiment Jobs (and later the traffic controller) run: kubectl-iter8 on a slim Python.
# Build: docker build -t ghcr.io/kubectl-iter8/kubectl-iter8:v$(python -c 'import kubectl_iter8; print(kubectl_iter8.__version__)') .
FROM python:3.12-slim

RUN useradd --uid 1001 --create-home --shell /usr/sbin/nologin iter8
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY kubectl_iter8 kubectl_iter8
COPY builtin_tasks builtin_tasks
COPY plugins plugins
COPY controller controller
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /home/iter8
USER 1001
ENTRYPOINT ["kubectl-iter8"]
CMD ["--help"]
