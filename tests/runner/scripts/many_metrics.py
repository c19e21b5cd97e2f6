from modelyard import Run

run = Run.get_context()
for i in range(1_000_000):
    run.log("value", i * 0.5)
print("logged")
