#!/usr/bin/env python3
"""Loads a page in headless Chromium (Debian's chromium + chromium-driver, through Selenium) and
waits, bounded, until a JavaScript condition holds; prints one JSON line with the condition's value
and the page's console, then exits 0. Exit 3: the condition did not hold in time (the JSON still
says what the page had); exit 4: Chromium or chromedriver could not be started.

    driver.py URL [--until 'return window.__result'] [--timeout 60] [--screenshot PATH]

With --screenshot, the page (in a --window-size window, default 1280,860) is saved as a PNG once the
condition holds.
"""
import argparse
import json
import shutil
import sys
import time


def find(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--until", default="return window.__result")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--screenshot", default=None)
    parser.add_argument("--window-size", default="1280,860")
    args = parser.parse_args()

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        print(json.dumps({"error": f"selenium is not installed: {error}"}))
        return 4
    chromium = find("chromium", "chromium-browser", "google-chrome")
    chromedriver = find("chromedriver")
    if not chromium or not chromedriver:
        print(json.dumps({"error": f"chromium ({chromium}) or chromedriver ({chromedriver}) not found on PATH"}))
        return 4
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={args.window_size}")
    options.add_argument("--force-device-scale-factor=1")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    except Exception as error:  # noqa: BLE001 - reported to the Swift test
        print(json.dumps({"error": f"could not start Chromium: {error}"}))
        return 4
    try:
        driver.set_page_load_timeout(args.timeout)
        driver.set_script_timeout(args.timeout)
        driver.get(args.url)
        deadline = time.monotonic() + args.timeout
        value = None
        while time.monotonic() < deadline:
            value = driver.execute_script(args.until)
            if value:
                break
            time.sleep(0.05)  # polling the page's state, bounded by the deadline
        if value and args.screenshot:
            driver.save_screenshot(args.screenshot)
        console = [entry.get("message", "") for entry in driver.get_log("browser")]
        print(json.dumps({"value": value, "console": console}))
        return 0 if value else 3
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
