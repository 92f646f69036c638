"""``python -m wasmgpu.spec``: run .wast spec scripts; see wasmgpu.spec.runner."""

import sys

from wasmgpu.spec.runner import main

sys.exit(main())
