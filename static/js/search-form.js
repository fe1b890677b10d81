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

  window.addEventListener("pageshow", function () {
    form.reset();
    locationInputs().forEach(function (input) {
      input.disabled = false;
    });
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
