#!/usr/bin/env python3
"""Drives headless Chromium over --remote-debugging-pipe (the DevTools protocol on fds 3 and 4,
no port, no third-party module) for scripts/screenshots.sh: for each page and width, emulates
a device of that width (a desktop window cannot be narrower than 500 px), measures the layout
and takes a full-page screenshot, light and dark.

    screenshots.py CHROMIUM PROFILE_DIR OUT_DIR PAGE.html|http://.../errors...

Prints one line per page and width; exit status 1 when an element reaches past the right
edge of the viewport (outside a box that clips or scrolls) or the page scrolls sideways.
"""
import base64, json, os, subprocess, sys

CHECK_WIDTHS = [360, 390, 1280]

# The filter box: shown by the page's script, and typing a code leaves that code's entry and
# hides most others.
FILTER = """(() => {
  const box = document.getElementById('filter'), seen = () =>
    [...document.querySelectorAll('article.entry')].filter(a => a.offsetParent !== null).length;
  const all = seen(); box.value = 'rate_limit_exceeded'; box.dispatchEvent(new Event('input'));
  const left = seen(); box.value = ''; box.dispatchEvent(new Event('input'));
  return {shown: !box.hidden, all, left, back: seen()};
})()"""
SHOT_WIDTHS = [390, 1280]

MEASURE = """(() => {
  const w = document.documentElement.clientWidth, bad = [];
  const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement)
    if (getComputedStyle(p).overflowX !== 'visible') return true; return false; };
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 0.5 && !clipped(e))
      bad.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' right=' + Math.round(r.right));
  }
  const sw = document.documentElement.scrollWidth;
  if (sw > w) bad.unshift('page scrollWidth=' + sw);
  return {width: w, bad: bad.slice(0, 10)};
})()"""


class Browser:
    def __init__(self, chromium, profile_dir):
        r_in, w_in = os.pipe()    # we write, chromium reads on fd 3
        r_out, w_out = os.pipe()  # chromium writes on fd 4, we read
        def fds():
            os.dup2(r_in, 3)
            os.dup2(w_out, 4)
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
             "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile_dir}", "about:blank"],
            # fds 3 and 4 are set by `fds` in the child; listing them keeps them open there.
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in)
        os.close(w_out)
        self.w = os.fdopen(w_in, "wb")
        self.r = os.fdopen(r_out, "rb")
        self.next_id = 0
        self.buf = b""
        self.events = []  # events that arrived while waiting for a reply

    def _read(self):
        while b"\0" not in self.buf:
            chunk = self.r.read1(1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.w.write(json.dumps(msg).encode() + b"\0")
        self.w.flush()
        while True:
            m = self._read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait_event(self, method, session):
        for i, m in enumerate(self.events):
            if m.get("method") == method and m.get("sessionId") == session:
                del self.events[: i + 1]
                return m
        self.events.clear()
        while True:
            m = self._read()
            if m.get("method") == method and m.get("sessionId") == session:
                return m

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        self.proc.wait(timeout=30)


def main():
    chromium, profile_dir, out_dir, pages = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    b = Browser(chromium, profile_dir)
    failed = False
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.call("Page.enable", session=s)
        for page in pages:
            if page.startswith("http"):
                # The page as the server sends it, under its Content-Security-Policy: the
                # filter check fails if the policy blocks the inline script.
                name, url = "served", page
            else:
                name = os.path.splitext(os.path.basename(page))[0]
                url = "file://" + os.path.abspath(page)
            for width in sorted(set(CHECK_WIDTHS + SHOT_WIDTHS)):
                b.call("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 800}, session=s)
                for scheme in ["light", "dark"]:
                    b.call("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": scheme}]}, session=s)
                    b.events.clear()
                    b.call("Page.navigate", {"url": url}, session=s)
                    b.wait_event("Page.loadEventFired", s)
                    if scheme == "light" and width in CHECK_WIDTHS:
                        res = b.call("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True},
                                     session=s)["result"]["value"]
                        ok = not res["bad"] and res["width"] == width
                        failed |= not ok
                        if width == 1280:
                            f = b.call("Runtime.evaluate", {"expression": FILTER, "returnByValue": True},
                                       session=s)["result"]["value"]
                            good = f["shown"] and 1 <= f["left"] < f["all"] and f["back"] == f["all"]
                            failed |= not good
                            print(f"{name}: filter {'OK' if good else 'FAIL'} ({f})")
                        print(f"{name} {width} px: layout {'OK' if ok else 'FAIL'} (viewport {res['width']})"
                              + ("" if ok else ": " + "; ".join(res["bad"])))
                    if width in SHOT_WIDTHS:
                        suffix = "" if scheme == "light" else "-dark"
                        # The first screen, and a screen scrolled to one code (a deep link:
                        # the sticky bar must not cover its heading). Whole pages would be
                        # some 50,000 px tall and several MB each.
                        for part, full, hash_ in [("-top", False, ""),
                                                  ("-entry", False, "code-rate_limit_exceeded")]:
                            if hash_:
                                b.call("Runtime.evaluate", {"expression": f"location.hash='{hash_}'"}, session=s)
                            shot = b.call("Page.captureScreenshot",
                                          {"format": "png", "captureBeyondViewport": full}, session=s)
                            with open(os.path.join(out_dir, f"{name}-{width}{suffix}{part}.png"), "wb") as f:
                                f.write(base64.b64decode(shot["data"]))
    finally:
        b.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
