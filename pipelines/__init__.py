"""Pipeline stages: one ``run_<stage>(inputs, config) -> outputs`` each, doing the file IO
around the pure core in ``pavement/``. The CLI (``pipelines.cli``) and the API only call these."""
