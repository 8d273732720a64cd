from saetm.cli import main

raise SystemExit(main())
