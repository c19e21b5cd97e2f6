"""A v1-style script that makes child runs with create_children, one per learning rate."""

from modelyard import Run

run = Run.get_context()
rates = [0.1, 0.01, 0.001]
children = run.create_children(tag_key="learning rate", tag_values=rates)
for child, rate in zip(children, rates, strict=True):
    child.log("lr", rate)
    child.complete()
plain = run.create_children(count=2)
for child in plain:
    child.complete()
print("children:", len(children) + len(plain))
