"""Check that the pinned software reads the compile-cache environment variables we set.

Runs inside one of the tier's virtualenvs: ``python cache_env.py IN.json`` where IN.json is
``{"files": {"NAME": "path/relative/to/site-packages.py", ...}}``. Prints one JSON line:
per name, whether that installed file exists and mentions the name as a string literal
(files are read, not imported, so no GPU stack is needed).
"""

import json
import sys
import sysconfig
from pathlib import Path


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    site = Path(sysconfig.get_paths()["purelib"])
    report = {}
    for name, relative in request["files"].items():
        path = site / relative
        text = path.read_text() if path.is_file() else ""
        read = f'"{name}"' in text or f"'{name}'" in text
        report[name] = {"file": str(path), "exists": path.is_file(), "read": read}
    print(json.dumps(report))


main()
