package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Test

class OverlayTest {
    private val s = Samples.sidecar()

    @Test
    fun captionsAndColors() {
        assertEquals("person 0.87", Overlay.caption(s, Detection(0f, 0f, 1f, 1f, 0.8749f, 1)))
        assertEquals("class 9 1.00", Overlay.caption(s, Detection(0f, 0f, 1f, 1f, 0.999f, 9)))
        assertEquals(Overlay.PALETTE[1], Overlay.color(1))
        assertEquals(Overlay.PALETTE[1], Overlay.color(1 + Overlay.PALETTE.size))
        assertEquals(Overlay.PALETTE[Overlay.PALETTE.size - 1], Overlay.color(-1))
        for (c in Overlay.PALETTE) assertEquals(0xFF, c ushr 24)  // opaque
    }

    @Test
    fun displayFilterAndCaptionPlace() {
        val d = listOf(Detection(0f, 0f, 1f, 1f, 0.9f, 1), Detection(0f, 0f, 1f, 1f, 0.5f, 1), Detection(0f, 0f, 1f, 1f, 0.2f, 2))
        assertEquals(d.subList(0, 2), Overlay.shown(d, 0.5f))
        assertEquals(0.37f, Overlay.minScore(37), 0f)
        assertEquals(50, Overlay.progress(Overlay.DEFAULT_MIN_SCORE))
        assertEquals(29, Overlay.progress(0.29f))
        assertEquals(70f, Overlay.captionTop(100f, 26f, 4f), 0f)   // above the box
        assertEquals(10f, Overlay.captionTop(10f, 26f, 4f), 0f)    // inside it at the view's top
    }

    @Test
    fun statusLines() {
        val r = FrameResult(listOf(Detection(0f, 0f, 1f, 1f, 0.9f, 1), Detection(0f, 0f, 1f, 1f, 0.3f, 1)),
            1.25, 12.0, 0.75, 640, 480)
        assertEquals("1 shown / 2 | pre 1.3  forward 12.0  post 0.8 ms", r.cameraStatus(0.5f))
        assertEquals("640x480: 2 detections | pre 1.3  forward 12.0  post 0.8 ms", r.stillStatus())
    }
}
