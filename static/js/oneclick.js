/* oneclick: small enhancements. Every page works without them: buying and cancelling are plain
   forms, and the purchase page has a "Refresh the status" link. */
(function () {
  "use strict";

  var POLL_MS = 1000;

  /* Buy now: a second submit of the same form is dropped here. The server would answer it with
     the same purchase anyway (the form's key), this only saves the round trip. */
  function guardBuyForms() {
    var forms = document.querySelectorAll("form[data-buy-form]");
    forms.forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.submitted) {
          event.preventDefault();
          return;
        }
        form.dataset.submitted = "1";
        var button = form.querySelector("button[type=submit]");
        if (button) button.setAttribute("aria-busy", "true");
      });
    });
    // Back from the purchase page (back-forward cache): the buttons may be used again.
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) return;
      forms.forEach(function (form) {
        delete form.dataset.submitted;
        var button = form.querySelector("button[aria-busy]");
        if (button) button.removeAttribute("aria-busy");
      });
    });
  }

  /* The purchase page: count down to the end of the cancel window and follow the status. */
  function livePurchase() {
    var region = document.getElementById("purchase-status");
    if (!region || !region.dataset.statusUrl) return;
    var url = region.dataset.statusUrl;
    var pollTimer = null;
    var tickTimer = null;
    var failures = 0;

    function currentState() {
      var section = region.querySelector("[data-state]");
      return section ? section.dataset.state : "";
    }

    function setNoJsLinks(visible) {
      region.querySelectorAll("[data-no-js]").forEach(function (el) {
        el.hidden = !visible;
      });
    }

    // `startedAt`: when the request that rendered the countdown was sent (performance.now()
    // time). Counting from then ends the countdown a little early rather than late.
    function startCountdown(startedAt) {
      clearInterval(tickTimer);
      tickTimer = null;
      var box = region.querySelector("[data-countdown]");
      if (!box) return;
      var remaining = Number(box.dataset.remainingMs) || 0;
      var windowMs = Math.max(Number(box.dataset.windowMs) || remaining, 1);
      var deadline = startedAt + remaining;
      var seconds = box.querySelector("[data-seconds]");
      var unit = box.querySelector("[data-unit]");
      var bar = box.querySelector("[data-bar]");
      box.hidden = false;

      function tick() {
        var left = Math.max(0, deadline - performance.now());
        var whole = Math.ceil(left / 1000);
        seconds.textContent = String(whole);
        unit.textContent = whole === 1 ? "second" : "seconds";
        bar.style.transform = "scaleX(" + Math.min(1, left / windowMs) + ")";
        if (left <= 0) {
          clearInterval(tickTimer);
          tickTimer = null;
          windowClosed(box);
        }
      }
      tick();
      tickTimer = setInterval(tick, 200);
    }

    // The server decides; until its answer arrives, stop offering a cancel that would be late.
    function windowClosed(box) {
      var form = region.querySelector("[data-cancel-form]");
      var hadFocus = form && form.contains(document.activeElement);
      if (form) form.hidden = true;
      var label = box.querySelector(".countdown__label");
      label.textContent = "The cancel window has closed. Your order is being confirmed…";
      box.querySelector(".countdown__bar").hidden = true;
      if (hadFocus) focusTitle();
      poll(0);
    }

    function focusTitle() {
      var title = region.querySelector("[tabindex='-1']");
      if (title) title.focus();
    }

    function poll(delay) {
      clearTimeout(pollTimer);
      pollTimer = setTimeout(fetchStatus, delay);
    }

    function fetchStatus() {
      var sentAt = performance.now();
      fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (!response.ok || response.redirected || type.indexOf("application/json") !== 0) {
            throw new Error("status answered " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          apply(data, sentAt);
        })
        .catch(function () {
          failures += 1;
          setNoJsLinks(true);
          if (failures < 30) poll(Math.min(10000, POLL_MS * failures));
        });
    }

    function apply(data, sentAt) {
      if (data.state !== currentState()) {
        var hadFocus = region.contains(document.activeElement);
        region.innerHTML = data.html;
        setNoJsLinks(false);
        startCountdown(sentAt);
        if (hadFocus) focusTitle();
      }
      if (data.state === "PENDING") poll(POLL_MS);
    }

    var navigation = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    setNoJsLinks(false);
    startCountdown(navigation ? navigation.requestStart : 0);
    if (currentState() === "PENDING") poll(POLL_MS);
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) poll(0);
    });
  }

  guardBuyForms();
  livePurchase();
})();
