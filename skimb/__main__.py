"""``python -m skimb [compare] ...`` runs the comparison command."""

import sys

from skimb.compare import main

if __name__ == "__main__":
    sys.exit(main())
