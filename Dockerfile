# One image for the four services: `holdline serve <service>`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 holdline
COPY --from=build /install /usr/local
USER holdline
WORKDIR /home/holdline
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["holdline", "serve"]
