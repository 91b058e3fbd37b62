package org.ssdmobile.postprocess

import org.junit.Assert.assertEquals
import org.junit.Test

class PreviewMappingTest {
    // a 400x300 (4:3) image shown in a 300x600 portrait view
    private val d = Detection(0.25f, 0.5f, 0.75f, 1.0f, 0.9f, 1)

    private fun check(expected: ViewRect, got: ViewRect) {
        assertEquals(expected.left, got.left, 1e-4f)
        assertEquals(expected.top, got.top, 1e-4f)
        assertEquals(expected.right, got.right, 1e-4f)
        assertEquals(expected.bottom, got.bottom, 1e-4f)
    }

    @Test
    fun fillStretchesEachAxis() {
        check(ViewRect(75f, 300f, 225f, 600f), PreviewMapping.toView(d, 400, 300, 300, 600, ScaleMode.FILL))
    }

    @Test
    fun fitLetterboxes() {
        // scale min(0.75, 2) = 0.75 -> image 300x225, centered vertically at offset 187.5
        check(ViewRect(75f, 187.5f + 112.5f, 225f, 187.5f + 225f), PreviewMapping.toView(d, 400, 300, 300, 600, ScaleMode.FIT))
    }

    @Test
    fun cropCoversAndCenters() {
        // scale max(0.75, 2) = 2 -> image 800x600, offset x = (300 - 800) / 2 = -250
        check(ViewRect(-50f, 300f, 350f, 600f), PreviewMapping.toView(d, 400, 300, 300, 600, ScaleMode.CROP))
    }

    @Test
    fun mirrorFlipsHorizontally() {
        val m = PreviewMapping.toView(Detection(0.1f, 0f, 0.3f, 1f, 1f, 1), 100, 100, 100, 100, ScaleMode.FILL, mirror = true)
        check(ViewRect(70f, 0f, 90f, 100f), m)
    }
}
