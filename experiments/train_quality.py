"""`cemjax-train-quality` (`cemjax.cli.train_quality`); `--help` lists its flags."""

from cemjax.cli.train_quality import run

if __name__ == "__main__":
    run()
