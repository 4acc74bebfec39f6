"""Models to and from LeRobot without torch: parameter-name tables per LeRobot layout version
(layouts.py), the engine that applies them (tables.py), SAC policies (lerobot_sac.py,
lerobot_pretrained.py) and reward classifiers (lerobot_classifier.py). numpy only."""
