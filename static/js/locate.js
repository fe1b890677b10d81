/* "Use my location": the browser's position fills lat/lon and runs the search.
 *
 * Progressive enhancement: the button stays hidden where there is no JavaScript or no
 * geolocation, and the ZIP / city fields work the same either way. A refusal or an error is
 * said next to the button; nothing is disabled, so the person can type a ZIP code instead.
 */
(function () {
  "use strict";

  var button = document.getElementById("use-location");
  var status = document.getElementById("locate-status");
  if (!button || !status || !button.form || !("geolocation" in navigator)) {
    return;
  }
  var form = button.form;

  var MESSAGES = {
    1: "Location permission was refused, so we cannot search near you. Enter a ZIP code or a city instead.",
    2: "Your location is not available right now. Enter a ZIP code or a city instead.",
    3: "Finding your location took too long. Try again, or enter a ZIP code or a city instead.",
  };

  function hiddenInput(name) {
    var input = form.querySelector('input[type="hidden"][name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.id = "id_" + name;
      input.dataset.addedByLocate = "true";
      form.appendChild(input);
    }
    return input;
  }

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("is-error", Boolean(isError));
  }

  function located(position) {
    // Four decimals is about 11 m: plenty for "near me", and less precise in shared URLs.
    hiddenInput("lat").value = position.coords.latitude.toFixed(4);
    hiddenInput("lon").value = position.coords.longitude.toFixed(4);
    // A typed ZIP or city would take precedence over the coordinates on the server.
    ["zip", "near"].forEach(function (name) {
      if (form.elements[name]) {
        form.elements[name].value = "";
      }
    });
    say("Searching near your location…", false);
    // requestSubmit runs the submit handlers (static/js/search-form.js leaves empty fields out).
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  function failed(error) {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    say(MESSAGES[error && error.code] || MESSAGES[2], true);
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    say("Finding your location…", false);
    navigator.geolocation.getCurrentPosition(located, failed, {
      enableHighAccuracy: false,
      timeout: 15000,
      maximumAge: 10 * 60 * 1000,
    });
  });

  // Coming back with the back button may restore this page as it was left (bfcache).
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      say("", false);
    }
    button.disabled = false;
    button.removeAttribute("aria-busy");
    form.querySelectorAll("input[data-added-by-locate]").forEach(function (input) {
      input.remove();
    });
  });
})();
