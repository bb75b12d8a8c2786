from mmbench.cli import main

raise SystemExit(main())
