"""``python -m videocam`` entry point."""

from videocam.cli import main

raise SystemExit(main())
