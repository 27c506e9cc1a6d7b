"""The SM clock and power sampled by nvidia-smi while a loop runs (development experiments:
clocks_under_load.py, tf32_clocks.py)."""
import subprocess, time


def sampled(loop, period_ms=50, ramp_s=0.3):
    """Runs `loop()` while nvidia-smi samples `clocks.sm,power.draw` every `period_ms`; returns
    (what loop returned, [(clock MHz, power W)] after the first quarter, the ramp)."""
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            "-lms", str(period_ms)], stdout=subprocess.PIPE, text=True)
    time.sleep(ramp_s)
    result = loop()
    smi.terminate(); out = smi.communicate()[0]
    samp = []
    for line in out.strip().splitlines():
        try:
            c, p = [float(s) for s in line.split(",")]; samp.append((c, p))
        except ValueError:
            pass
    return result, samp[len(samp) // 4:]
