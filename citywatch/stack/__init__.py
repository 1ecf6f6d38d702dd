"""The local stack: a Prefect server, workers, deployments and an S3 server, started and
stopped by ``citywatch up`` / ``citywatch down`` and on demand by the CLI."""
