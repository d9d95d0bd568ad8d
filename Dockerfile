# The image the experiment Jobs and the traffic controller run: kubectl-iter8 on a slim Python.
# Build: docker build -t ghcr.io/kubectl-iter8/kubectl-iter8:v$(python -c 'import kubectl_iter8; print(kubectl_iter8.__version__)') .
#
# The wheel is built in a stage of its own: the build runs setup.py, which generates the A/B/n
# messages (kubectl_iter8/abn_pb2.py) from controller/abn/abn.proto with grpcio-tools; the final
# stage installs only the wheel, so neither the sources nor the build tools end up in the image.
# The image leaves out kubectl_iter8.testing (the fake API server and pytest fixtures, for tests and
# plugin authors, who get them from PyPI; `lint-imports` checks that no runtime code imports them):
# the final stage deletes the folder and its RECORD lines right after the install.
# tests/core/test_dockerfile.py builds the wheel from exactly what the build stage copies, and replays
# the final stage's install steps on it.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY kubectl_iter8 kubectl_iter8
COPY builtin_tasks builtin_tasks
COPY plugins plugins
COPY controller controller
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --uid 1001 --create-home --shell /usr/sbin/nologin iter8
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && rm -r "$site/kubectl_iter8/testing" \
    && sed -i '\#^kubectl_iter8/testing/#d' "$site"/kubectl_iter8-*.dist-info/RECORD
# pip compiled the bytecode; the pods' root filesystem is read-only, so Python must not try to write more.
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/iter8
USER 1001
ENTRYPOINT ["kubectl-iter8"]
CMD ["--help"]
