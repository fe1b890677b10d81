/* "List your practice": add clinic and certification blocks in place, and take the person to
 * the error summary (and from it to each field).
 *
 * Without JavaScript the "Add another" buttons post the form and the server answers the same
 * page with one more block and everything typed kept; with it, the block is added here from the
 * <template> the server rendered (Django's empty form, "__prefix__" standing for its number).
 */
(function () {
  "use strict";

  document.querySelectorAll("fieldset.blocks").forEach(function (group) {
    var prefix = group.dataset.prefix;
    var max = parseInt(group.dataset.max, 10);
    var total = group.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]');
    var template = group.querySelector("template");
    var button = group.querySelector(".add-block button");
    if (!total || !template || !button) {
      return;
    }
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var index = parseInt(total.value, 10);
      if (index >= max) {
        return;
      }
      var html = template.innerHTML
        .replace(/__prefix__/g, String(index))
        .replace(/__number__/g, String(index + 1));
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var block = holder.firstElementChild;
      button.parentNode.parentNode.insertBefore(block, button.parentNode);
      total.value = String(index + 1);
      if (index + 1 >= max) {
        button.parentNode.hidden = true;
      }
      var first = block.querySelector("input, select, textarea");
      if (first) {
        first.focus();
      }
    });
  });

  var summary = document.getElementById("error-summary") || document.getElementById("rate-limit");
  if (summary) {
    summary.focus();
  }
  document.querySelectorAll("#error-summary a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (field) {
        event.preventDefault();
        field.focus();
        field.scrollIntoView({ block: "center" });
      }
    });
  });
})();
