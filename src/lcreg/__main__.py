from lcreg.cli import main

raise SystemExit(main())
