"""What the fork server of `promoter serve` prepares once, so that every run's process starts warm.

Imported by the fork server only (`serve.PRELOAD`), before it forks any run. Measured in a run's process,
each of these cost time on every release before its first task: the modules Prefect's engine imports
lazily at run time (about 0.1 s), the rebuild of the run-context models (about 0.06 s), and a verifying
TLS context for each of the five API clients Prefect creates on the way to the first task (about 50 ms
each to load the CA bundle). How each is done leans on Prefect internals: `prefect_compat.warm_up`.
"""

from __future__ import annotations

import certifi
from prefect.settings import PREFECT_API_SSL_CERT_FILE

from deployments.prefect_compat import warm_up
from promoter.providers.http import tls_context

warm_up(PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
tls_context()  # the forge clients' context, built once for every run
