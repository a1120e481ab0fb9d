"""Process helpers the benchmark scripts share."""
import subprocess


def stop(p, timeout=5):
    """Ends process p (a Popen): SIGTERM, then SIGKILL if it is still there
    after timeout seconds."""
    if p.poll() is not None:
        return
    try:
        p.terminate()
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except ProcessLookupError:
        pass
