/* The search form always shows the search the page shows.
 *
 * Browsers restore what was last typed into a form when the person comes back with the back
 * button, even though the URL (and so the results below) is the older search: a radius of 50
 * above a list for 25 miles. Resetting the form to the values the server rendered from the URL
 * keeps the two in step.
 */
(function () {
  "use strict";

  var form = document.querySelector("form.search-form");
  if (!form) {
    return;
  }

  function locationInputs() {
    return form.querySelectorAll('input[type="hidden"][name="lat"], input[type="hidden"][name="lon"]');
  }

  // What the person changes on this visit is theirs: on a slow page "pageshow" (which waits for
  // every image and script) can come after they have started typing, and resetting then would
  // undo a ticked box. Browsers restore typed values only when the page is reached with the back
  // or forward button or reloaded, so a page reached by a link or a search is never reset: this
  // deferred script may start after the person ticked a box, too late to have seen the tick.
  // A page restored from the back-forward cache is reset whatever was touched on the earlier
  // visit.
  var navigation = window.performance && performance.getEntriesByType
    ? performance.getEntriesByType("navigation")[0]
    : null;
  var mayHoldRestoredValues = !navigation || navigation.type === "back_forward" || navigation.type === "reload";
  var touched = false;
  form.addEventListener("input", function () {
    touched = true;
  });
  form.addEventListener("change", function () {
    touched = true;
  });

  window.addEventListener("pageshow", function (event) {
    if (event.persisted || (mayHoldRestoredValues && !touched)) {
      form.reset();
    }
    touched = false;
    locationInputs().forEach(function (input) {
      input.disabled = false;
    });
    form.querySelectorAll("[data-left-out]").forEach(function (input) {
      input.disabled = false;
      delete input.dataset.leftOut;
    });
  });

  // A disabled field is not sent: the URL carries only what was filled in (no "near=&q="),
  // and "all of them" only with a certification to hold. The server redirects to the same
  // clean URL when JavaScript is off.
  function leaveOut(input) {
    if (!input.disabled) {
      input.disabled = true;
      input.dataset.leftOut = "true";
    }
  }

  form.addEventListener("submit", function () {
    Array.prototype.forEach.call(form.elements, function (input) {
      var kind = (input.type || "").toLowerCase();
      if (!input.name || kind === "checkbox" || kind === "radio" || kind === "submit" || kind === "button") {
        return;
      }
      if (input.value.trim() === "") {
        leaveOut(input);
      }
    });
    if (!form.querySelector('input[name="certification"]:checked')) {
      form.querySelectorAll('input[name="match"]').forEach(leaveOut);
    }
  });

  // A ZIP or city typed after a location search replaces the location (the server would prefer
  // it anyway), so the URL carries only the origin actually used.
  form.addEventListener("submit", function () {
    var typed = ["zip", "near"].some(function (name) {
      return form.elements[name] && form.elements[name].value.trim() !== "";
    });
    if (typed) {
      locationInputs().forEach(function (input) {
        input.disabled = true;
      });
    }
  });
})();
