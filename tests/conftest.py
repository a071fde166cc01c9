import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
logging.getLogger("preencode").setLevel(logging.INFO)

from tests.encode_setup import clips, make_deep_model, model_files  # noqa: E402,F401  (fixtures for every package)
