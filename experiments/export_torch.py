"""`cemjax-export` (`cemjax.cli.export`); run `python experiments/export_torch.py --help` for its flags."""

from cemjax.cli.export import run

if __name__ == "__main__":
    run()
