"""AI Hub data pipeline: a user's download → passages, KG edges, training mix and eval sets.

    kmed data prepare --aihub-dir data/raw/aihub --out data/processed

    from kmed.data.aihub import prepare
    result = prepare(Path("data/raw/aihub"), Path("data/processed"))

Modules: ``tree`` (folders, zips, split zips), ``loading`` (decode, recognise, dispatch), one loader
per dataset (``medical``, ``healthcare``, ``korean``, ``math_solution``, ``interview``), ``text``,
``dedupe``, ``split``, ``ingest`` (passages, KG edges, grounding), ``mix``, ``evalsets`` and
``pipeline``. PII scrubbing lives in ``kmed.data.pii`` (the agent's guardrails use it too).
"""

# The dataset loaders register themselves with ``loading.register_loader`` when imported: once, here.
from kmed.data.aihub import healthcare, interview, korean, math_solution, medical  # noqa: F401
from kmed.data.aihub.config import PipelineConfig
from kmed.data.aihub.pipeline import PrepareResult, prepare

__all__ = ["PipelineConfig", "PrepareResult", "prepare"]
