"""Shared test settings: hypothesis profiles sized for a 2-core CI machine.

``make test`` is reproducible: the default profile derandomizes hypothesis, so a clean clone
draws the same examples on every machine and a red run can be rerun as is. Searching for new
counterexamples is a separate, deliberate act: ``HYPOTHESIS_PROFILE=explore make test``
draws fresh random examples (and more of them); anything it finds becomes a fixed test.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "explore", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
