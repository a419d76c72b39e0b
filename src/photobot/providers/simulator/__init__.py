"""A kie.ai (and small fal.ai) simulator: a real HTTP server for tests, demos and benchmarks.

It implements createTask, recordInfo, the credit query, the three upload endpoints and a result file host,
makes real stylised images with Pillow from the downloaded input, and POSTs the documented callbacks (HMAC
signed when `hmac_key` is set) after a delay. Faults are knobs (`config.SimConfig`), changeable at runtime over
`POST /_sim/config`; counters at `GET /_sim/stats`. See docs/providers.md.
"""

from photobot.providers.simulator.app import create_app
from photobot.providers.simulator.config import SimConfig
from photobot.providers.simulator.runner import RunningServer, Simulator, run_standalone, start_server

__all__ = ["RunningServer", "SimConfig", "Simulator", "create_app", "run_standalone", "start_server"]
