"""task=detect tests need the ``detect`` extra (ultralytics): without it this folder is not collected."""
import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("ultralytics") else ["test_*.py"]
