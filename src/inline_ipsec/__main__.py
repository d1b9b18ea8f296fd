"""`python -m inline_ipsec` is the `inline-ipsec` command."""
import sys

from .cli import main

sys.exit(main())
