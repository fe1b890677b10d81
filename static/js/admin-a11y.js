// Every admin page (templates/admin/base_site.html). Django 5.2's SelectFilter2.js (the
// "filter_horizontal" pickers) draws its magnifier icon as a <span aria-label="...">; a span has
// no role that may carry a name, so screen readers may drop it (axe-core: aria-prohibited-attr).
// The icon is an image with a description: say so. Deferred, so this load handler runs after
// SelectFilter2's own, which draws the pickers.
"use strict";
window.addEventListener("load", () => {
  document.querySelectorAll(".search-label-icon[aria-label]:not([role])").forEach((icon) => {
    icon.setAttribute("role", "img");
  });
});
