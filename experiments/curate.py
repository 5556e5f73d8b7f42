"""`cemjax-curate` (`cemjax.cli.curate`); run `python experiments/curate.py --help` for its flags."""

from cemjax.cli.curate import run

if __name__ == "__main__":
    run()
