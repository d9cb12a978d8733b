#!/usr/bin/env python3
"""The chat example in two headless Chromium sessions (Selenium): alice (whose WebSocket goes
through the test's proxy) and bob chat, type, edit; bob's attempt to edit alice's message is
refused; the network drops for alice while bob writes and she sends, and she catches up.
Prints one JSON line with what each page shows, then exits 0 (1: a step failed; the JSON says
which; 4: Chromium could not be started). Every wait is bounded.

    two_browsers.py BASE_URL PROXIED_WS_URL --screenshot PATH [--timeout 30]

BASE_URL serves the app and the test routes /test/network/down and /test/network/up.
"""
import argparse
import json
import shutil
import sys
import time
import urllib.request


def find(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


class StepFailed(Exception):
    pass


# The browsers started, quit on the way out whatever happens.
OPEN_DRIVERS = {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("proxied")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
    except ImportError as error:
        print(json.dumps({"error": f"selenium is not installed: {error}"}))
        return 4
    chromium = find("chromium", "chromium-browser", "google-chrome")
    chromedriver = find("chromedriver")
    if not chromium or not chromedriver:
        print(json.dumps({"error": f"chromium ({chromium}) or chromedriver ({chromedriver}) not found on PATH"}))
        return 4

    def browser():
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking", "--window-size=1000,640",
                     "--force-device-scale-factor=1"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        driver.set_page_load_timeout(args.timeout)
        driver.set_script_timeout(args.timeout)
        return driver

    steps = []
    result = {"steps": steps}
    drivers = OPEN_DRIVERS

    def wait(name, script, what):
        """Polls `script` in `name`'s page until it returns something truthy, bounded."""
        deadline = time.monotonic() + args.timeout
        value = None
        while time.monotonic() < deadline:
            value = drivers[name].execute_script(script)
            if value:
                steps.append(what)
                return value
            time.sleep(0.05)  # polling the page's state, bounded by the deadline
        raise StepFailed(f"{name}: timed out waiting for {what} (last value {value!r})")

    def control(path):
        with urllib.request.urlopen(args.base + path, timeout=10) as response:
            response.read()

    state = "return document.querySelector('#connection').dataset.state"
    messages = """return [...document.querySelectorAll('#messages .message')]
        .map((li) => ({from: li.dataset.from, id: li.dataset.id ?? null,
                       content: li.querySelector('.content')?.textContent ?? null,
                       edited: li.querySelector('.edited') !== null,
                       pending: li.classList.contains('pending')}))"""
    online = "return [...document.querySelectorAll('#online li')].map((li) => li.dataset.user).join(',')"

    def contents(name):
        return [m["content"] for m in drivers[name].execute_script(messages) if not m["pending"]]

    def send(name, text):
        box = drivers[name].find_element(By.CSS_SELECTOR, "#text")
        box.send_keys(text + Keys.ENTER)

    try:
        try:
            drivers["alice"] = browser()
            drivers["bob"] = browser()
        except Exception as error:  # noqa: BLE001 - reported to the Swift test
            print(json.dumps({"error": f"could not start Chromium: {error}"}))
            return 4
        # Alice logs in with the login screen; bob through ?user=.
        drivers["alice"].get(f"{args.base}/?ws={args.proxied}")
        wait("alice", "return document.querySelectorAll('#users button').length === 3", "login screen")
        drivers["alice"].find_element(By.CSS_SELECTOR, "#users button[data-user=alice]").click()
        drivers["bob"].get(f"{args.base}/?user=bob")
        for name in ("alice", "bob"):
            wait(name, state + " === 'open'", f"{name} connected")
            wait(name, "return document.querySelector('#room-name').textContent === '# general'", f"{name} in #general")
            # Presence: both online in #general (each counted once).
            wait(name, online + " === 'alice,bob'", f"{name} sees alice and bob online")

        # Typing indicator, then a message each way.
        drivers["alice"].find_element(By.CSS_SELECTOR, "#text").send_keys("hel")
        wait("bob", "return document.querySelector('#typing').textContent === 'Alice is typing…'", "bob sees alice typing")
        send("alice", "lo bob")
        wait("bob", "return document.querySelector('#typing').textContent === ''", "typing cleared by the message")
        wait("bob", messages + ".some((m) => m.from === 'alice' && m.content === 'hello bob')", "bob got alice's message")
        send("bob", "hi alice")
        wait("alice", messages + ".some((m) => m.from === 'bob' && m.content === 'hi alice')", "alice got bob's message")

        # Alice edits her message; bob sees the edit.
        drivers["alice"].execute_script("document.querySelector('.message.mine .edit').click()")
        editor = drivers["alice"].find_element(By.CSS_SELECTOR, ".message .editor input")
        editor.clear()
        editor.send_keys("hello bob (edited)" + Keys.ENTER)
        wait("bob", messages + ".some((m) => m.content === 'hello bob (edited)' && m.edited)", "bob sees the edit")

        # Bob has no edit button on alice's message, and the server refuses the edit anyway.
        result["bobEditButtons"] = drivers["bob"].execute_script(
            "return document.querySelectorAll(\".message[data-from='alice'] .edit\").length")
        result["bobEditOfAlice"] = drivers["bob"].execute_async_script("""
            const done = arguments[arguments.length - 1];
            const id = Number(document.querySelector(".message[data-from='alice']").dataset.id);
            window.chat.sb.send('message.edit', {id, content: 'hacked'}).then(() => done('accepted'), (error) => done(error.code));""")

        # The network drops for alice (her WebSocket goes through the proxy, which now also refuses).
        control("/test/network/down")
        wait("alice", state + " === 'reconnecting'", "alice reconnecting")
        result["bannerWhileDown"] = drivers["alice"].execute_script("return !document.querySelector('#banner').hidden")
        for index in (1, 2, 3):
            send("bob", f"while you were away {index}")
        wait("bob", messages + ".filter((m) => m.content.startsWith('while you were away') && !m.pending).length === 3",
             "bob's three messages acked")
        send("alice", "sent while offline")
        wait("alice", messages + ".some((m) => m.content === 'sent while offline' && m.pending)", "alice's message queued")
        control("/test/network/up")
        wait("alice", state + " === 'open'", "alice reconnected")
        wait("alice", messages + ".filter((m) => m.content.startsWith('while you were away')).length === 3", "alice caught up")
        wait("alice", messages + ".some((m) => m.content === 'sent while offline' && !m.pending)", "alice's queued message acked")
        wait("bob", messages + ".some((m) => m.from === 'alice' && m.content === 'sent while offline')", "bob got it")
        wait("alice", online + " === 'alice,bob'", "alice sees both online again")
        # The screenshot: alice's window with the conversation, bob typing.
        # (The page sends typing.start at most every 2 s; bob has just typed.)
        drivers["bob"].execute_script("window.chat.lastTypingSent = 0")
        drivers["bob"].find_element(By.CSS_SELECTOR, "#text").send_keys("see")
        wait("alice", "return document.querySelector('#typing').textContent === 'Bob is typing…'", "alice sees bob typing")
        drivers["alice"].save_screenshot(args.screenshot)
        result["alice"] = contents("alice")
        result["bob"] = contents("bob")
        result["ok"] = True
        print(json.dumps(result))
        return 0
    except StepFailed as failure:
        result["error"] = str(failure)
    except Exception as error:  # noqa: BLE001 - reported to the Swift test
        result["error"] = f"{type(error).__name__}: {error}"
    for name, driver in drivers.items():
        try:
            result[f"{name}Console"] = [entry.get("message", "") for entry in driver.get_log("browser")]
            result[f"{name}Page"] = driver.execute_script(messages)
        except Exception:  # noqa: BLE001
            pass
    print(json.dumps(result))
    return 1


if __name__ == "__main__":
    try:
        code = main()
    finally:
        for open_driver in OPEN_DRIVERS.values():
            try:
                open_driver.quit()
            except Exception:  # noqa: BLE001 - already gone
                pass
    sys.exit(code)
