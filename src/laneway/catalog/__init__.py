"""Laneway's model catalog: every model with maker, origin, license, parameters,
context, capabilities, dated and sourced prices per provider and benchmark figures.

The data lives in the packaged ``models.yaml`` (top-level ``version``, ``updated``,
``models``). Every figure carries its source -- the https URL of the public page it comes
from (an article, a vendor's pricing page, a model card) -- and its date; unknown is
``null``, never estimated or zero. Where sources disagree (they do, on prices) each figure
is kept with its own source: ``ModelInfo.prices_for`` returns them all, ``price_for`` the
newest-dated.

Prices are LIST prices (the standard on-demand rate: no batch, promotional or volume
discount) as of their date, and they go stale: a deployment's ``price`` in the config
always wins over the catalog. A model without a sourced price has none (its notes say
why), so its cost reads as unknown rather than $0. Prices are USD per million tokens
(``Decimal``), keyed by provider. Provider keys are
the gateway's vendor ids -- ``openai``, ``anthropic``, ``gemini``, ``together``,
``deepinfra``, ``fireworks``, ``groq``, ``openrouter``, ``deepseek``, ``mistral`` --
plus makers whose own API an article prices: ``moonshot``, ``minimax``, ``alibaba``,
``xiaomi``, ``stepfun`` (``PROVIDERS``).

License ids are SPDX ids where one exists (``Apache-2.0``, ``MIT``), else a named id
(``llama-4-community``, ``proprietary``); licence classes (``license_class``; called
``license_tier`` before, a name still read with a ``DeprecationWarning``) are
``permissive``, ``bespoke``, ``community`` and ``closed``. Origins are ISO 3166-1
alpha-2 codes. ``kv_cache`` (optional) gives the KV-cache geometry used to size GPUs.
"""

from laneway.catalog._catalog import Catalog
from laneway.catalog._load import PROVIDERS, default_catalog, load_catalog
from laneway.catalog._model import (
    LICENSE_CLASSES,
    LICENSE_TIERS,
    Benchmark,
    Capabilities,
    KvGeometry,
    LicenseClass,
    LicenseTier,
    ModelInfo,
    Price,
)

__all__ = [
    "LICENSE_CLASSES",
    "LICENSE_TIERS",
    "PROVIDERS",
    "Benchmark",
    "Capabilities",
    "Catalog",
    "KvGeometry",
    "LicenseClass",
    "LicenseTier",
    "ModelInfo",
    "Price",
    "default_catalog",
    "load_catalog",
]
