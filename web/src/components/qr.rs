//! QR codes as inline SVG, drawn on the server from text (the otpauth:// URI of TOTP
//! enrolment): no image files, no JavaScript, no third party seeing the secret.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The SVG markup for `data`, or `None` when the text is too long for a QR code.
pub fn svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#111827"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // The renderer emits an XML declaration, which has no place inside an HTML document.
    let start = image.find("<svg").unwrap_or(0);
    Some(image[start..].to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_an_svg_element() {
        let svg = super::svg("otpauth://totp/Berth:a%40b.c?secret=JBSWY3DPEHPK3PXP&issuer=Berth").expect("fits");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("</svg>"));
    }
}
