# Runtime image: processing, exporters and the service. No torch (training is an extra).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgl/libglib are not needed by opencv-python-headless; libgomp is for onnxruntime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, in their own cached layer: only pyproject.toml invalidates it.
COPY pyproject.toml README.md ./
RUN mkdir -p pavement pipelines api exporters \
    && touch pavement/__init__.py pipelines/__init__.py api/__init__.py exporters/__init__.py \
    && pip install '.[api]' \
    && pip uninstall -y pavement-inspection

# Then the source and the shipped models.
COPY pavement ./pavement
COPY pipelines ./pipelines
COPY api ./api
COPY exporters ./exporters
COPY models ./models
COPY sample_data ./sample_data
# Editable, so the code finds models/ and sample_data/ beside it as in a checkout.
RUN pip install --no-deps -e .

RUN useradd --create-home --uid 10001 pavement \
    && mkdir -p /data && chown pavement:pavement /data
USER pavement
VOLUME ["/data"]

ENTRYPOINT ["pavement"]
CMD ["--help"]
