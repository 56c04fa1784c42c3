#!/usr/bin/env python3
"""The export-host web console in a real headless Chromium (selenium).

Run by host/tests/console_browser.rs against a running daemon:

    python3 console.py --base http://127.0.0.1:PORT --token eht_... \
        --admin-token eht_... --out DIR --downloads DIR --gate-until PATH

Signs in, starts exports through the form generated from the plugins'
schemas, follows them live to their end, downloads one through the console
and compares the bytes with the API's, copies a signed link, cancels and
deletes an export, reads the plugins as a user and as an admin, at a
desktop size and at 390x844 (a phone). Saves a PNG of each state into
--out. Exits 0 when everything held, 1 with the reason otherwise; a missing
chromium, chromedriver or selenium is a failure, never a skip.
"""

import argparse
import base64
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request


def fail(message):
    print(f"console.py: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as err:
    fail(
        f"selenium is missing ({err}); install it with `python3 -m pip install selenium` "
        "(.ci/test installs it)"
    )


def find_program(names, extra_paths, what, package):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    for path in extra_paths:
        if os.access(path, os.X_OK):
            return path
    fail(f"{what} is missing (looked for {', '.join(names)}); install the Debian package `{package}` (.ci/test installs it)")


class Console:
    """One browser window on the console, with the checks it needs."""

    def __init__(self, args, label, width, height, phone):
        self.args = args
        self.label = label
        self.shots = 0
        chromium = find_program(["chromium", "chromium-browser"], ["/usr/lib/chromium/chromium"], "chromium", "chromium")
        driver_path = find_program(["chromedriver"], ["/usr/lib/chromium/chromedriver"], "chromedriver", "chromium-driver")
        options = Options()
        options.binary_location = chromium
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--lang=en-US",
            f"--window-size={width},{height}",
        ]:
            options.add_argument(arg)
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": args.downloads,
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service(driver_path), options=options)
        except WebDriverException as err:
            fail(f"cannot start chromium through {driver_path}: {err.msg}")
        self.driver.set_page_load_timeout(30)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": args.downloads})
        if phone:
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
            )
            self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})

    def close(self):
        self.driver.quit()

    # --- helpers ---------------------------------------------------------

    def shot(self, name):
        """A PNG of the whole page (beyond the viewport) into --out."""
        self.shots += 1
        path = os.path.join(self.args.out, f"{self.label}-{self.shots:02d}-{name}.png")
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        view = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
        width = max(view["clientWidth"], 1)
        height = max(size["height"], view["clientHeight"])
        data = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        with open(path, "wb") as out:
            out.write(base64.b64decode(data["data"]))
        print(f"screenshot {path}")

    def wait(self, condition, what, timeout=20):
        try:
            return WebDriverWait(
                self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
            ).until(lambda d: condition())
        except TimeoutException:
            self.shot("failure")
            alert = self.text_of("alert")
            fail(f"[{self.label}] {what}: not within {timeout} s (alert: {alert!r}, url: {self.driver.current_url})")

    def by_id(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def css(self, selector, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def text_of(self, element_id):
        try:
            return self.by_id(element_id).text
        except WebDriverException:
            return ""

    def visible(self, element_id):
        try:
            return self.by_id(element_id).is_displayed()
        except WebDriverException:
            return False

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def check(self, condition, message):
        if not condition:
            self.shot("failure")
            fail(f"[{self.label}] {message}")

    def no_horizontal_overflow(self, where):
        widths = self.js("return [document.documentElement.scrollWidth, window.innerWidth]")
        self.check(widths[0] <= widths[1], f"{where}: the page is {widths[0]} px wide in a {widths[1]} px window (it scrolls sideways)")

    def every_input_has_a_label(self, where):
        unlabelled = self.js(
            """return Array.from(document.querySelectorAll('input, select, textarea'))
                 .filter(e => e.offsetParent !== null)
                 .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                 .map(e => e.id || e.name || e.outerHTML.slice(0, 60));"""
        )
        self.check(not unlabelled, f"{where}: inputs without a label: {unlabelled}")

    def browser_errors(self):
        """CSP violations and script errors the page logged."""
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException:
            return []
        bad = []
        for entry in entries:
            message = entry.get("message", "")
            if "Content Security Policy" in message or "Uncaught" in message or "Refused to" in message:
                bad.append(message)
        return bad

    def api(self, method, path, token, body=None):
        request = urllib.request.Request(self.args.base + path, method=method, data=body)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    # --- the console's pieces -------------------------------------------

    def open(self):
        self.driver.get(self.args.base + "/")
        self.wait(lambda: self.visible("view-signin"), "the sign-in form shows")

    def sign_in(self, token):
        field = self.by_id("token")
        field.clear()
        # The keyboard way: type the token and press Enter.
        field.send_keys(token + Keys.ENTER)
        self.wait(lambda: self.visible("view-exports"), "the exports show after signing in")
        stored = self.js("return sessionStorage.getItem('export-host.token')")
        self.check(stored == token, "the token is kept in sessionStorage")
        local = self.js("return localStorage.length")
        self.check(local == 0, "nothing is written to localStorage")
        self.check(token not in self.driver.current_url, "the token is not in the URL")

    def sign_out(self):
        self.by_id("sign-out").click()
        self.wait(lambda: self.visible("view-signin"), "the sign-in form shows after signing out")
        self.check(self.js("return sessionStorage.getItem('export-host.token')") is None, "signing out clears the token")

    def go(self, view):
        self.css(f'#nav a[data-view="{view}"]')[0].click()
        self.wait(lambda: self.visible(f"view-{view}"), f"the {view} view shows")

    def card_ids(self):
        return [c.get_attribute("data-id") for c in self.css("#exports-list li.export")]

    def card(self, export_id):
        found = self.css(f'li.export[data-id="{export_id}"]')
        return found[0] if found else None

    # The console repaints a card's facts on every progress event, so these
    # read in one script call: an element found in one WebDriver round trip
    # may be gone by the next.
    def status(self, export_id):
        return self.js(
            "var c = document.querySelector('li.export[data-id=\"' + arguments[0] + '\"]');"
            " return c ? c.getAttribute('data-status') : null;",
            export_id,
        )

    def fact(self, export_id, term):
        return self.js(
            "var c = document.querySelector('li.export[data-id=\"' + arguments[0] + '\"]');"
            " var d = c && c.querySelector('[data-fact=\"' + arguments[1] + '\"] dd');"
            " return d ? d.textContent.trim() : null;",
            export_id,
            term,
        )

    def field(self, container, name):
        found = self.css(f'#{container} [data-field="{name}"] input, #{container} [data-field="{name}"] textarea, #{container} [data-field="{name}"] select')
        self.check(found, f"the generated form has a field {name!r} in #{container}")
        return found[0]

    def new_export(self, loader, fmt, selector, options=None, screenshot=None, refused=False):
        """Fills the generated form and submits it; returns the new export's
        id, or with `refused` the error the form shows."""
        self.go("new")
        Select(self.by_id("new-loader")).select_by_value(loader)
        for name, value in selector.items():
            element = self.field("selector-fields", name)
            element.clear()
            element.send_keys(value)
        Select(self.by_id("new-format")).select_by_value(fmt)
        for name, value in (options or {}).items():
            element = self.field("options-fields", name)
            if element.tag_name == "select":
                Select(element).select_by_visible_text(value)
            elif element.get_attribute("type") == "checkbox":
                if element.is_selected() != bool(value):
                    element.click()
            else:
                element.clear()
                element.send_keys(value)
        self.every_input_has_a_label("the new-export form")
        if screenshot:
            self.shot(screenshot)
        before = set(self.card_ids())
        self.by_id("new-submit").click()
        self.wait(lambda: self.visible("view-exports") or self.visible("new-error"), "the export is submitted")
        if refused:
            self.check(self.visible("new-error"), "the export was refused")
            return self.text_of("new-error")
        self.check(not self.visible("new-error"), f"the export was refused: {self.text_of('new-error')}")
        self.wait(lambda: set(self.card_ids()) - before, "the new export shows in the list")
        (new_id,) = set(self.card_ids()) - before
        return new_id

    def downloaded_file(self, before):
        folder = self.args.downloads

        def done():
            names = set(os.listdir(folder)) - before
            finished = [n for n in names if not n.endswith(".crdownload") and not n.startswith(".")]
            return finished and not any(n.endswith(".crdownload") for n in names)

        self.wait(done, "the download lands in the download folder", timeout=30)
        (name,) = [n for n in set(os.listdir(folder)) - before if not n.endswith(".crdownload")]
        path = os.path.join(folder, name)
        # The file is renamed into place when complete; read it once stable.
        time.sleep(0.2)
        with open(path, "rb") as f:
            return name, f.read()


def desktop(args):
    c = Console(args, "desktop", 1280, 900, phone=False)
    try:
        c.open()
        c.shot("signin")
        c.every_input_has_a_label("sign-in")

        # Keyboard: the token field has the focus; Tab reaches the sign-in
        # button, with a visible focus ring.
        c.check(c.js("return document.activeElement.id") == "token", "the token field has the focus on arrival")
        ActionChains(c.driver).send_keys(Keys.TAB).perform()
        focus = c.js(
            "const e = document.activeElement; const s = getComputedStyle(e);"
            "return [e.tagName, e.type, s.outlineStyle, s.outlineWidth]"
        )
        c.check(focus[0] == "BUTTON" and focus[1] == "submit", f"Tab moves to the sign-in button, not {focus}")
        c.check(focus[2] != "none" and focus[3] != "0px", f"the keyboard focus is visible: {focus}")

        # A refused token says so and stays on the sign-in form.
        field = c.by_id("token")
        field.send_keys("eht_" + "0" * 64 + Keys.ENTER)
        c.wait(lambda: c.visible("alert") and "refused" in c.text_of("alert"), "a wrong token is refused")
        c.shot("signin-refused")

        c.sign_in(args.token)
        c.wait(lambda: c.visible("exports-empty"), "a new user sees the empty state")
        c.shot("exports-empty")

        # The form is generated from the schemas: a required field left
        # empty is caught before anything is sent.
        c.go("new")
        Select(c.by_id("new-loader")).select_by_value("csv/csv")
        c.field("selector-fields", "path").clear()
        c.by_id("new-submit").click()
        c.wait(lambda: c.visible("new-error"), "an empty required field is reported")
        c.check("required" in c.text_of("new-error"), f"the error names the required field: {c.text_of('new-error')}")
        c.check(c.js("return document.activeElement.closest('[data-field]')?.dataset.field") == "path", "the focus moves to the field to fix")
        c.shot("new-export-required")

        # csv -> json, followed live to `completed` (no reload, no refresh).
        export_id = c.new_export("csv/csv", "json/json", {"path": "people.csv"}, {"pretty": True}, screenshot="new-export-filled")
        c.wait(lambda: c.status(export_id) == "completed", "the csv -> json export reaches completed in the list", timeout=60)
        c.check(c.fact(export_id, "Rows") == "3", f"the list shows 3 rows, not {c.fact(export_id, 'Rows')}")
        c.wait(lambda: "completed" in c.text_of("announce"), "the change is announced (aria-live)")
        c.shot("exports-completed")

        # Download through the console: the browser fetches the signed link.
        page_url = c.driver.current_url
        before = set(os.listdir(args.downloads))
        c.css('button[data-action="download"]', c.card(export_id))[0].click()
        name, got = c.downloaded_file(before)
        status, want = c.api("GET", f"/v1/exports/{export_id}/download", args.token)
        c.check(status == 200, f"the API download answers {status}")
        c.check(got == want, f"the file the browser saved ({name}, {len(got)} bytes) differs from the API's ({len(want)} bytes)")
        c.check(b'"Grace"' in got and b"New York, NY" in got, f"the download holds the rows: {got[:200]!r}")
        c.check(c.driver.current_url == page_url, "downloading leaves the console where it was")
        c.check(args.token not in page_url, "the token never goes into a URL")
        print(f"downloaded {name}: {len(got)} bytes, same as the API")

        # Copy a signed link: it works without a token.
        c.css('button[data-action="copy"]', c.card(export_id))[0].click()
        c.wait(lambda: c.css('[data-role="link"]', c.card(export_id)), "the signed link shows")
        link = c.css('[data-role="link"]', c.card(export_id))[0].get_attribute("value")
        c.check(link.startswith("http") and args.token not in link, f"a signed link, without the token: {link}")
        with urllib.request.urlopen(link, timeout=30) as response:
            c.check(response.read() == want, "the signed link downloads the same bytes without a token")
        c.shot("exports-link")

        # A long export: progress arrives live, then cancel and delete.
        running = c.new_export("gate/gate", "csv/csv", {"until": args.gate_until})
        c.wait(lambda: c.status(running) == "processing", "the gate export shows processing")
        c.wait(lambda: (c.fact(running, "Rows") or "0").replace(",", "").isdigit() and int((c.fact(running, "Rows") or "0").replace(",", "")) > 0,
               "progress (rows) arrives over the events stream", timeout=30)
        c.shot("exports-processing")
        c.check(not c.css('button[data-action="delete"]:not([hidden])', c.card(running)), "an active export offers no delete")
        c.css('button[data-action="cancel"]', c.card(running))[0].click()
        c.wait(lambda: c.status(running) == "cancelled", "the export is cancelled")
        c.shot("exports-cancelled")
        # The run stops at its next write, which a slow loader may not reach
        # for long: let the gate open so its worker is free for what follows.
        open(args.gate_until, "w").close()
        delete = c.css('button[data-action="delete"]', c.card(running))[0]
        delete.click()
        c.wait(lambda: delete.text == "Confirm delete", "deleting asks for a confirmation")
        delete.click()
        c.wait(lambda: c.card(running) is None, "the deleted export leaves the list")
        status, _ = c.api("GET", f"/v1/exports/{running}", args.token)
        c.check(status == 404, f"the deleted export is gone from the API too (answered {status})")

        # A request the server refuses shows why, on the form.
        error_text = c.new_export("csv/csv", "csv/csv", {"path": "no-such-file.csv"}, refused=True)
        c.check("no-such-file.csv" in error_text, f"the refusal names the file: {error_text!r}")
        c.check(c.js("return document.activeElement.id") == "new-error", "the focus moves to the refusal")
        c.shot("new-export-refused")

        # Reload: the session survives in this tab, the list comes back.
        c.driver.refresh()
        c.wait(lambda: c.visible("nav") and c.visible("view-new"), "a reload keeps the session and the view")
        c.go("exports")
        c.wait(lambda: c.card(export_id) is not None, "the list comes back after a reload")

        c.go("plugins")
        c.wait(lambda: c.css('#plugins-body [data-plugin="csv"]'), "the plugins show")
        c.check(not c.visible("role"), "a user is not shown as an admin")
        c.shot("plugins-user")

        c.sign_out()
        c.shot("signed-out")

        # An admin: everyone's exports, and the plugins with failures.
        c.sign_in(args.admin_token)
        c.wait(lambda: c.card(export_id) is not None, "an admin sees the user's export")
        c.wait(lambda: c.visible("role") and c.text_of("role").lower() == "admin", "the admin is marked")
        status, body = c.api("GET", f"/v1/exports/{export_id}", args.token)
        owner = json.loads(body)["user_id"]
        c.check(c.fact(export_id, "User") == owner, f"an admin sees whose export it is: {c.fact(export_id, 'User')}, not {owner}")
        c.shot("exports-admin")
        c.go("plugins")
        c.wait(lambda: c.css('#plugins-body [data-plugin="missing"]'), "the failed plugin shows")
        for name in ["csv", "json", "gate"]:
            card = c.css(f'#plugins-body [data-plugin="{name}"]')[0]
            c.check(c.css(".status-loaded", card), f"plugin {name} shows as loaded")
        missing = c.css('#plugins-body [data-plugin="missing"]')[0]
        c.check(c.css(".status-failed", missing) and "does not exist" in missing.text, f"the failed plugin shows why: {missing.text!r}")
        c.check("admin" in c.text_of("plugins-note"), "the admin note shows")
        c.shot("plugins-admin")

        errors = c.browser_errors()
        c.check(not errors, f"the page logged CSP violations or script errors: {errors}")
        c.sign_out()
    finally:
        c.close()


def phone(args):
    c = Console(args, "phone", 390, 844, phone=True)
    try:
        c.open()
        width = c.js("return window.innerWidth")
        c.check(width == 390, f"the phone viewport is 390 px wide, not {width}")
        c.no_horizontal_overflow("sign-in")
        c.shot("signin")
        c.sign_in(args.token)
        c.wait(lambda: c.card_ids(), "the exports list shows")
        c.no_horizontal_overflow("exports")
        c.shot("exports")
        c.go("new")
        Select(c.by_id("new-loader")).select_by_value("csv/csv")
        Select(c.by_id("new-format")).select_by_value("csv/csv")
        c.no_horizontal_overflow("new export")
        c.every_input_has_a_label("the new-export form")
        c.shot("new-export")
        export_id = c.new_export("csv/csv", "json/jsonl", {"path": "people.csv"})
        c.wait(lambda: c.status(export_id) == "completed", "the csv -> jsonl export completes", timeout=60)
        c.no_horizontal_overflow("exports after a new one")
        c.shot("exports-completed")
        c.go("plugins")
        c.wait(lambda: c.css('#plugins-body [data-plugin="csv"]'), "the plugins show")
        c.no_horizontal_overflow("plugins")
        c.shot("plugins")
        errors = c.browser_errors()
        c.check(not errors, f"the page logged CSP violations or script errors: {errors}")
    finally:
        c.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--gate-until", required=True)
    args = parser.parse_args()
    # selenium must not reach the network for drivers: the local ones are used.
    os.environ["SE_OFFLINE"] = "true"
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.downloads, exist_ok=True)
    args.downloads = os.path.abspath(args.downloads)
    for old in os.listdir(args.out):
        if old.endswith(".png"):
            os.remove(os.path.join(args.out, old))
    desktop(args)
    phone(args)
    print("console.py: all checks passed")


if __name__ == "__main__":
    main()
