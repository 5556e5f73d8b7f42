"""`cemjax-pretrain` (`cemjax.cli.pretrain`); run `python experiments/pretrain.py --help` for its flags."""

from cemjax.cli.pretrain import run

if __name__ == "__main__":
    run()
