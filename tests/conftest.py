import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
logging.getLogger("preencode").setLevel(logging.INFO)

# Fixtures for every package: real audio files and tiny models; a real S3 server on 127.0.0.1.
from tests.encode_setup import clips, make_deep_model, model_files, wds_output  # noqa: E402,F401
from tests.s3_server import aws_env, s3_bucket, s3_endpoint  # noqa: E402,F401
