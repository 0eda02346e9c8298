/* videocam review page of one video: the mouse on the timeline (VC.video.pointer). A click
 * seeks to the time under it, a drag across the lanes zooms to that span, the wheel zooms
 * around the pointer (Shift+wheel, or a horizontal wheel, pans); the tooltip follows it. */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});

  /* A press that moves less than this (CSS pixels) is a click, not a drag. */
  var DRAG_FROM = 4;
  /* The wheel's zoom: the view's length times exp(WHEEL_ZOOM x the wheel's delta). */
  var WHEEL_ZOOM = 0.0015;
  var MAIN_BUTTON = 0;

  /* Binds the pointer on the timeline tl (VC.video.Timeline) to it and to the player. */
  V.pointer = function (tl, clip, player) {
    var over = tl.overlay, gutter = V.LAYOUT.gutter;
    function localX(event) { return event.clientX - over.getBoundingClientRect().left; }

    over.addEventListener("pointerdown", function (event) {
      if (event.button !== MAIN_BUTTON) return;
      var x = localX(event);
      if (x < gutter) return;
      tl.drag = { x0: x, x1: x, moved: false };
      over.setPointerCapture(event.pointerId);
    });
    over.addEventListener("pointermove", function (event) {
      var x = localX(event), drag = tl.drag;
      if (drag) {
        drag.x1 = Math.max(gutter, Math.min(gutter + tl.plotW(), x));
        if (Math.abs(drag.x1 - drag.x0) > DRAG_FROM) drag.moved = true;
      }
      tl.hoverX = tl.inPlot(x) ? x : null;
      tl.tipY = event.clientY - tl.element.getBoundingClientRect().top;
      tl.tooltip(tl.hoverX, tl.tipY);
      tl.drawOverlay();
    });
    over.addEventListener("pointerleave", function () {
      tl.hoverX = null;
      tl.hideTooltip();
      tl.drawOverlay();
    });
    over.addEventListener("pointerup", function (event) {
      var drag = tl.drag;
      if (!drag) return;
      tl.drag = null;
      if (drag.moved) {
        tl.setView(tl.xToTime(Math.min(drag.x0, drag.x1)), tl.xToTime(Math.max(drag.x0, drag.x1)));
      } else {
        player.currentTime = clip.clampTime(tl.xToTime(localX(event)));
        tl.drawOverlay();
      }
    });
    over.addEventListener("wheel", function (event) {
      event.preventDefault();
      var dx = event.deltaX, dy = event.deltaY;
      if (event.shiftKey && !dx) { dx = dy; dy = 0; }
      if (Math.abs(dx) > Math.abs(dy)) {
        var shift = dx / tl.plotW() * (tl.view.b - tl.view.a);
        tl.setView(tl.view.a + shift, tl.view.b + shift);
      } else {
        var x = localX(event);
        tl.zoom(Math.exp(dy * WHEEL_ZOOM), x >= gutter ? tl.xToTime(x) : undefined);
      }
    }, { passive: false });
  };
})();
