"""``python3 -m wasmgpu.fuzz``: differential fuzzing against wasmtime; see wasmgpu.fuzz.campaign."""

import sys

from wasmgpu.fuzz.campaign import main

sys.exit(main())
