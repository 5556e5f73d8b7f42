"""`cemjax-demo` (`cemjax.cli.demo`); run `python experiments/demo.py --help` for its flags."""

from cemjax.cli.demo import run

if __name__ == "__main__":
    run()
