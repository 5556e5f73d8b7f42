"""`cemjax-evaluate` (`cemjax.cli.evaluate`); run `python experiments/evaluate.py --help` for its flags."""

from cemjax.cli.evaluate import run

if __name__ == "__main__":
    run()
