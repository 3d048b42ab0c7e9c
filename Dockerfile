# syntax=docker/dockerfile:1
# One image for the four services: `docker run IMAGE <intake|risk|assistance|notify>`.

# build: wheels for the project and its dependencies, installed into a venv
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
# tzdata: zoneinfo data (notify's quiet hours use Asia/Shanghai) without the Debian package
RUN /opt/venv/bin/pip install . tzdata

# runtime: no compilers, no pip cache, an unprivileged numeric user (Kubernetes runAsNonRoot)
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="holdline" \
      org.opencontainers.image.description="Holdline services: intake, risk, assistance, notify"
RUN groupadd --gid 10001 holdline \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin holdline
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOLDLINE_HOST=0.0.0.0
WORKDIR /home/holdline
USER 10001:10001
EXPOSE 8001 8002 8003 8004
ENTRYPOINT ["holdline", "serve"]
CMD ["all"]
