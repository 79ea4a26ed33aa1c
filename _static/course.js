// Deep Learning by Experiment: figures stay legible on a phone.
// A figure drawn for the page (a few hundred to ~1300 px wide) shrunk to a phone's width would
// make its axis labels unreadable. Each figure of a code cell's output records 65% of its drawn
// width as the smallest width it may take; course.css applies it on narrow screens only, where a
// wider figure then scrolls sideways inside its own output box (never the page).
(function () {
  "use strict";
  var MIN_SCALE = 0.65;
  function record(img) {
    if (img.naturalWidth > 0) {
      img.style.setProperty("--course-figure-min-width", Math.round(MIN_SCALE * img.naturalWidth) + "px");
      img.classList.add("course-figure");
    }
  }
  function setup() {
    document.querySelectorAll("div.cell_output img").forEach(function (img) {
      if (img.complete) {
        record(img);
      } else {
        img.addEventListener("load", function () { record(img); }, { once: true });
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
