"""``python -m genperf`` runs the command line."""

from genperf.cli import main

if __name__ == "__main__":
    main()
